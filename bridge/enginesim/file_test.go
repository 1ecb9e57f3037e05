package enginesim

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes content to a file named name in a new directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const validJSON = `{"checks": [
  {"id": 7, "type": "http", "ip": "127.0.0.1", "port": 8080,
   "interval": "1s", "timeout": "500ms", "retries": 1,
   "send": "/healthz", "receive": "ok", "code": 200, "method": "GET",
   "proxy": true, "tls_verify": false},
  {"type": "tcp", "ip": "192.0.2.10", "host": "10.0.0.1", "port": 80,
   "mode": "dsr", "mark": 65600},
  {"type": "dns", "ip": "::1", "port": 53, "send": "example.test.",
   "method": "A", "receive": "192.0.2.1"}
]}`

const validYAML = `
checks:
  - id: 7
    type: http
    ip: 127.0.0.1
    port: 8080
    interval: 1s
    timeout: 500ms
    retries: 1
    send: /healthz
    receive: ok
    code: 200
    method: GET
    proxy: true
    tls_verify: false
  - {type: tcp, ip: 192.0.2.10, host: 10.0.0.1, port: 80, mode: dsr,
     mark: 65600}
  - type: dns
    ip: "::1"
    port: 53
    send: example.test.
    method: A
    receive: 192.0.2.1
`

// TestLoadFile checks that JSON and YAML files load to the same checks.
func TestLoadFile(t *testing.T) {
	want := []Check{{
		ID: 7, Type: "http", IP: "127.0.0.1", Port: 8080,
		Interval: time.Second, Timeout: 500 * time.Millisecond, Retries: 1,
		Send: "/healthz", Receive: "ok", Code: 200, Method: "GET",
		Proxy: true, TLSVerify: boolPtr(false),
	}, {
		Type: "tcp", IP: "192.0.2.10", Host: "10.0.0.1", Port: 80,
		Mode: "dsr", Mark: 65600,
	}, {
		Type: "dns", IP: "::1", Port: 53, Send: "example.test.", Method: "A",
		Receive: "192.0.2.1",
	}}
	tests := []struct {
		name, file, content string
	}{
		{"json", "checks.json", validJSON},
		{"yaml", "checks.yaml", validYAML},
		{"yml", "checks.YML", validYAML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadFile(writeFile(t, tt.file, tt.content))
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadFileEmpty checks that an empty list is valid: no checks.
func TestLoadFileEmpty(t *testing.T) {
	for _, content := range []string{`{"checks": []}`, "checks:\n"} {
		got, err := LoadFile(writeFile(t, "c.yaml", content))
		if err != nil || len(got) != 0 {
			t.Errorf("LoadFile(%q) = %v, %v; want no checks", content, got, err)
		}
	}
}

// TestLoadFileErrors checks that each error names what is wrong, and the
// check's index when it is about a check.
func TestLoadFileErrors(t *testing.T) {
	const tcp = `"type": "tcp", "ip": "127.0.0.1", "port": 80`
	tests := []struct {
		name, file, content string
		is                  error
		want                []string
	}{
		{"extension", "checks.txt", `{"checks": []}`, ErrFileFormat,
			[]string{`extension ".txt"`}},
		{"json syntax", "c.json", `{"checks": [}`, ErrFileFormat,
			[]string{"invalid character"}},
		{"json trailing data", "c.json", `{"checks": []} {}`, ErrFileFormat,
			[]string{"invalid character"}},
		{"yaml syntax", "c.yaml", "checks: [", ErrFileFormat,
			[]string{"yaml:"}},
		{"empty", "c.yaml", "", ErrFileFormat, []string{"want an object"}},
		{"not an object", "c.json", `[]`, ErrFileFormat, []string{"cannot unmarshal"}},
		{"no checks", "c.json", `{}`, ErrFileFormat, []string{"checks: missing"}},
		{"checks not a list", "c.json", `{"checks": {}}`, ErrFileFormat,
			[]string{"checks: want a list"}},
		{"unknown top-level field", "c.yaml", "checks: []\nchecsk: []\n",
			ErrFileFormat, []string{`unknown field "checsk"`}},
		{"unknown field", "c.json", `{"checks": [{` + tcp + `}, {` + tcp +
			`, "sned": "x"}]}`, ErrInvalidCheck,
			[]string{"check 1: sned: unknown field"}},
		{"field in another case", "c.yaml", "checks: [{Type: tcp}]",
			ErrInvalidCheck, []string{"check 0: Type: unknown field"}},
		{"check not an object", "c.json", `{"checks": [1]}`, ErrInvalidCheck,
			[]string{"check 0: want an object"}},
		{"wrong kind", "c.json", `{"checks": [{` + tcp + `, "retries": "x"}]}`,
			ErrInvalidCheck, []string{"check 0: retries: want int, got string"}},
		{"bad duration", "c.yaml", "checks:\n- {type: tcp, timeout: 10x}\n",
			ErrInvalidCheck, []string{`check 0: timeout: "10x" is not a duration`}},
		{"duration as a number", "c.yaml", "checks:\n- {interval: 10}\n",
			ErrInvalidCheck, []string{"check 0: interval: want string, got number"}},
		{"invalid checks", "c.yaml", "checks:\n- {type: tcp, ip: 127.0.0.1}\n" +
			"- {type: icmp, ip: 127.0.0.1}\n- {type: radius, ip: \"::1\", port: 1}\n",
			ErrInvalidCheck, []string{"check 0: port: must be within",
				"check 2: send: want user:password:secret"}},
		{"duplicate id", "c.json", `{"checks": [{"id": 3, ` + tcp +
			`}, {"id": 3, ` + tcp + `}]}`, ErrInvalidCheck,
			[]string{"check 1: id: 3 is also the id of check 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			_, err := LoadFile(path)
			if !errors.Is(err, tt.is) {
				t.Fatalf("LoadFile = %v, want %v", err, tt.is)
			}
			for _, want := range append(tt.want, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LoadFile = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestLoadFileMissing checks that a missing file is fs.ErrNotExist.
func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile = %v, want fs.ErrNotExist", err)
	}
}
