package actors

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	const max = 8
	tests := []struct {
		name  string
		input string
		// want lists the lines read in order; "!" stands for
		// errLineTooLong.
		want []string
	}{
		{"plain lines", "a\nbc\n", []string{"a", "bc"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"last line without newline", "a\nlast", []string{"a", "last"}},
		{"exactly the limit", "12345678\n", []string{"12345678"}},
		{"over the limit, then fine", "123456789\nok\n", []string{"!", "ok"}},
		{"far over the limit", strings.Repeat("x", 100) + "\nok\n",
			[]string{"!", "ok"}},
		{"empty line", "\n", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A tiny buffer makes long lines arrive in several chunks.
			r := bufio.NewReaderSize(strings.NewReader(tt.input), 16)
			var got []string
			for {
				line, err := readLine(r, max)
				if errors.Is(err, io.EOF) {
					break
				}
				if errors.Is(err, errLineTooLong) {
					got = append(got, "!")
					continue
				}
				if err != nil {
					t.Fatalf("readLine: %v", err)
				}
				got = append(got, string(line))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("a\nbb\n"), 4)
	f.Add([]byte("toolongline\nok"), 3)
	f.Add([]byte("\r\n\n"), 1)
	f.Fuzz(func(t *testing.T, input []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		r := bufio.NewReaderSize(bytes.NewReader(input), 16)
		for range len(input) + 2 {
			line, err := readLine(r, max)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) {
				t.Fatalf("readLine: %v", err)
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes exceeds the limit %d", len(line), max)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q holds a newline", line)
			}
		}
		t.Fatal("readLine did not reach EOF")
	})
}
