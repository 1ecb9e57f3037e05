package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

// The -config file is reloaded once it has been quiet for reloadDebounce
// after a change (editors write a file in several steps), and at the
// latest reloadMaxWait after the first change, so that a directory that
// never stays quiet cannot hold a reload back forever.
const (
	reloadDebounce = 250 * time.Millisecond
	reloadMaxWait  = 2 * time.Second
)

// errNoChecksList says that a -config file does not hold a list of checks.
var errNoChecksList = errors.New("want a list of checks")

// checkSources enforces the rule between -config and -engine: they are
// mutually exclusive, and given -config, -engine's default is ignored.
// An explicit -engine "" goes with -config.
func (c *config) checkSources(fs *flag.FlagSet) error {
	if c.configFile == "" {
		return nil
	}
	engineSet := false
	fs.Visit(func(f *flag.Flag) { engineSet = engineSet || f.Name == "engine" })
	if engineSet && c.engine != "" {
		return errors.New("-config and -engine are mutually exclusive")
	}
	c.engine = ""
	return nil
}

// lineError is a problem with a -config file at a line.
type lineError struct {
	// Line is 1-based.
	Line int
	Err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *lineError) Unwrap() error { return e.Err }

// fileCheck is one element of a -config file's list.
type fileCheck struct {
	// raw is the element in JSON, for messages.ParseConfigs.
	raw json.RawMessage
	// line is where the element starts, 1-based.
	line int
	// err, if set, says why the element has no JSON form; raw is nil.
	err error
}

// parseChecks splits a -config file into its checks: JSON for a .json
// file, else YAML. An error about the file as a whole is a *lineError.
func parseChecks(path string, data []byte) ([]fileCheck, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &lineError{Line: 1,
			Err: errors.New("the file is empty; write [] for no checks")}
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return parseJSONChecks(data)
	}
	return parseYAMLChecks(data)
}

// parseJSONChecks reads a JSON list, noting the line of each element.
func parseJSONChecks(data []byte) ([]fileCheck, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, jsonError(data, err)
	} else if tok != json.Delim('[') {
		start := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
		return nil, &lineError{Line: lineAt(data, start), Err: errNoChecksList}
	}

	var checks []fileCheck
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(data, err)
		}
		start := int(dec.InputOffset()) - len(raw)
		checks = append(checks, fileCheck{raw: raw, line: lineAt(data, start)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &lineError{Line: lineAt(data, int(dec.InputOffset())),
			Err: errors.New("unexpected data after the list")}
	}
	return checks, nil
}

// jsonError places a decoding error of data at its line.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &lineError{Line: lineAt(data, int(se.Offset)), Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &lineError{Line: lineAt(data, len(data)),
			Err: errors.New("unexpected end of the file")}
	}
	return &lineError{Line: 1, Err: err}
}

// lineAt returns the 1-based line of data's byte at offset.
func lineAt(data []byte, offset int) int {
	offset = min(max(offset, 0), len(data))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

// parseYAMLChecks reads a YAML list, noting the line of each element, and
// turns each element into JSON.
func parseYAMLChecks(data []byte) ([]fileCheck, error) {
	docs, err := yamlDocuments(data)
	if err != nil {
		return nil, yamlError(data, err)
	}
	switch {
	case len(docs) == 0 || len(docs[0].Content) == 0:
		return nil, &lineError{Line: 1,
			Err: errors.New("the file has no list; write [] for no checks")}
	case len(docs) > 1:
		return nil, &lineError{Line: clampLine(data, docs[1].Line),
			Err: errors.New("a second YAML document; want one list of checks")}
	}
	list := docs[0].Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, &lineError{Line: clampLine(data, list.Line), Err: errNoChecksList}
	}

	checks := make([]fileCheck, 0, len(list.Content))
	for _, item := range list.Content {
		c := fileCheck{line: clampLine(data, item.Line)}
		c.raw, c.err = yamlToJSON(item)
		checks = append(checks, c)
	}
	return checks, nil
}

// clampLine returns line within data's lines: yaml.v3 places an empty
// node after the end of a file that ends in, say, "---".
func clampLine(data []byte, line int) int {
	return min(max(line, 1), lineAt(data, len(data)))
}

// yamlDocuments parses every YAML document of data.
func yamlDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

// yamlError places a YAML syntax error of data at its line.
//
// NOTE: the line in yaml.v3's text is often not the problem's: for a
// parser error it is the 0-based line where the enclosing list or
// mapping starts. So the line is found by bisection instead: the first k
// lines of data fail to parse, with the same problem, and the first k-1
// do not. Only when that fails is yaml.v3's line used.
func yamlError(data []byte, err error) error {
	line, problem := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	failsAt := func(k int) bool {
		_, err := yamlDocuments(bytes.Join(lines[:k], nil))
		return err != nil
	}
	lo, hi := 0, len(lines) // The first lo lines parse; the first hi do not.
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; failsAt(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	_, err = yamlDocuments(bytes.Join(lines[:hi], nil))
	if _, p := splitYAMLError(err); err != nil && p == problem {
		line = hi
	}
	return &lineError{Line: max(line, 1), Err: errors.New(problem)}
}

// splitYAMLError splits yaml.v3's "yaml: line 3: problem" into 3 and
// "problem"; the line is 0 when the text names none.
func splitYAMLError(err error) (line int, problem string) {
	if err == nil {
		return 0, ""
	}
	msg := oneLine(strings.TrimPrefix(err.Error(), "yaml: "))
	if _, serr := fmt.Sscanf(msg, "line %d:", &line); serr == nil {
		_, msg, _ = strings.Cut(msg, ":")
	}
	return line, strings.TrimSpace(msg)
}

// yamlToJSON returns one YAML element in JSON. Timestamps and mapping
// keys are read as strings first: a check has no time fields, and a key
// such as 3 is then an unknown field, as in JSON.
func yamlToJSON(n *yaml.Node) (json.RawMessage, error) {
	stringifyScalars(n)
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, errors.New(oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("no JSON form: %v", err)
	}
	return raw, nil
}

// stringifyScalars retags n's timestamps and mapping keys as strings.
func stringifyScalars(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for i, child := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && child.Kind == yaml.ScalarNode {
			child.Tag = "!!str"
		}
		stringifyScalars(child)
	}
}

// fileUpdate turns a file's checks into the manager's update, rejecting
// invalid checks one by one as the socket does. The Index of each
// rejected config is its position in the file, and they are in the
// file's order.
func fileUpdate(checks []fileCheck) *messages.UpdateConfigs {
	raws := make([]json.RawMessage, 0, len(checks))
	index := make([]int, 0, len(checks))
	var unparsed []*messages.ConfigError
	for i, c := range checks {
		if c.err != nil {
			unparsed = append(unparsed, &messages.ConfigError{Index: i,
				Err: fmt.Errorf("%w: %v", messages.ErrInvalidConfig, c.err)})
			continue
		}
		raws = append(raws, c.raw)
		index = append(index, i)
	}

	configs, rejected := messages.ParseConfigs(raws)
	for _, ce := range rejected {
		ce.Index = index[ce.Index]
	}
	rejected = append(rejected, unparsed...)
	slices.SortFunc(rejected, func(a, b *messages.ConfigError) int {
		return cmp.Compare(a.Index, b.Index)
	})
	return &messages.UpdateConfigs{Configs: configs, Rejected: rejected}
}

// configFile is the -config file: standalone mode's source of checks. Its
// checks go to the manager when the server starts, on SIGHUP, and when
// the file changes. A file that cannot be read or parsed as a whole
// leaves the running checks as they are; an invalid check is rejected
// alone. Each problem is logged with its line.
//
// A configFile is used by one goroutine at a time: openConfigFile's
// caller, then the watch loop.
type configFile struct {
	// path is absolute.
	path string
	log  zerolog.Logger
	// debounce and maxWait pace reloads after changes; see reloadDebounce.
	debounce, maxWait time.Duration

	// first is the update read by openConfigFile, sent by start.
	first *messages.UpdateConfigs
	// sum is the checksum of the content last read, so that a change
	// event that leaves the file as it was does not reload it.
	sum [sha256.Size]byte
}

// openConfigFile reads the -config file at path, or returns nil for an
// empty path. A file that cannot be read or parsed as a whole is an error,
// so that the server does not start without its checks; invalid checks
// are logged and rejected alone.
func openConfigFile(path string, logger zerolog.Logger) (*configFile, error) {
	if path == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	f := &configFile{
		path:     abs,
		log:      logger.With().Str("file", abs).Logger(),
		debounce: reloadDebounce,
		maxWait:  reloadMaxWait,
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	f.first, err = f.parse(data)
	if err != nil {
		return nil, fmt.Errorf("-config: %s: %w", abs, err)
	}
	f.logLoaded(f.first, "start")
	return f, nil
}

// parse parses data, remembers its checksum and logs each rejected check.
func (f *configFile) parse(data []byte) (*messages.UpdateConfigs, error) {
	f.sum = sha256.Sum256(data)
	checks, err := parseChecks(f.path, data)
	if err != nil {
		return nil, err
	}
	update := fileUpdate(checks)
	for _, ce := range update.Rejected {
		ev := f.log.Error().Int("line", checks[ce.Index].line).
			Str("error", ce.Err.Error())
		if ce.HasID {
			ev = ev.Uint64("id", ce.ID)
		} else {
			ev = ev.Int("index", ce.Index)
		}
		ev.Msg("config_file_check_rejected")
	}
	return update, nil
}

func (f *configFile) logLoaded(u *messages.UpdateConfigs, reason string) {
	f.log.Info().Str("reason", reason).Int("checks", len(u.Configs)).
		Int("rejected", len(u.Rejected)).Msg("config_file_loaded")
}

// reload reads the file again and sends its checks. A change event
// (force false) that left the content as it was reloads nothing; SIGHUP
// (force true) always does.
func (f *configFile) reload(reason string, force bool,
	send func(*messages.UpdateConfigs)) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.log.Error().Err(err).Str("reason", reason).
			Msg("config_file_unreadable_keeping_checks")
		return
	}
	if !force && sha256.Sum256(data) == f.sum {
		f.log.Debug().Str("reason", reason).Msg("config_file_unchanged")
		return
	}
	update, err := f.parse(data)
	if err != nil {
		ev := f.log.Error().Str("reason", reason)
		var le *lineError
		if errors.As(err, &le) {
			ev = ev.Int("line", le.Line).Str("error", le.Err.Error())
		} else {
			ev = ev.Err(err)
		}
		ev.Msg("config_file_invalid_keeping_checks")
		return
	}
	send(update)
	f.logLoaded(update, reason)
}

// watch reloads the file on each value from hup and, paced as debounce
// and maxWait say, after changes in its directory, until ctx ends. It
// watches the directory, not the file, so that a file an editor or a
// deployment tool replaces is still seen; events about other files cost
// a read, and reload nothing. Without a watch, only hup reloads.
func (f *configFile) watch(ctx context.Context, hup <-chan os.Signal,
	send func(*messages.UpdateConfigs)) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w := f.newWatcher(); w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	// A change between the first read and the watch is seen here.
	f.reload("file_changed", false, send)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// first is when the first change of a pending reload was seen.
	var first time.Time
	arm := func() {
		if first.IsZero() {
			first = time.Now()
		}
		timer.Reset(min(f.debounce, time.Until(first.Add(f.maxWait))))
	}

	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.reload("sighup", true, send)
		case ev, ok := <-events:
			if !ok {
				events = nil
			} else if ev.Op != fsnotify.Chmod {
				arm()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// E.g. an overflow: changes may have gone unseen.
			f.log.Warn().Err(err).Msg("config_file_watch_error")
			arm()
		case <-timer.C:
			first = time.Time{}
			f.reload("file_changed", false, send)
		}
	}
}

// newWatcher returns a watcher of the file's directory and, when the file
// is a symbolic link into another directory, of that one too; or nil,
// logged, when there can be none.
func (f *configFile) newWatcher() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		f.log.Warn().Err(err).Msg("config_file_watch_unavailable_use_sighup")
		return nil
	}
	dir := filepath.Dir(f.path)
	if err := w.Add(dir); err != nil {
		w.Close()
		f.log.Warn().Err(err).Msg("config_file_watch_unavailable_use_sighup")
		return nil
	}
	if target, err := filepath.EvalSymlinks(f.path); err == nil &&
		filepath.Dir(target) != dir {
		if err := w.Add(filepath.Dir(target)); err != nil {
			f.log.Warn().Err(err).Str("target", target).
				Msg("config_file_target_unwatched_use_sighup")
		}
	}
	return w
}

// startReloads sends f's checks to svc's manager and reloads them until
// the returned function is called, which waits for the reloads to end.
// SIGHUP reloads f; without a -config file (f nil) it is logged and
// ignored rather than left to end the process, since systemd's reload
// sends it.
func startReloads(f *configFile, svc *actors.Service,
	logger zerolog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if f != nil {
		send := func(u *messages.UpdateConfigs) {
			svc.System().Root.Send(svc.Manager(), u)
		}
		send(f.first)
		wg.Go(func() { f.watch(ctx, hup, send) })
	} else {
		wg.Go(func() { ignoreHangups(ctx, hup, logger) })
	}
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}

// ignoreHangups logs each SIGHUP until ctx ends.
func ignoreHangups(ctx context.Context, hup <-chan os.Signal, logger zerolog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info().Msg("sighup_ignored_no_config_file")
		}
	}
}

// oneLine returns s on one line: some errors take several.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
