package actors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/messages"
)

// stateFileVersion is written into every state file; a file of another
// version is foreign and ignored.
const stateFileVersion = 1

// Restore policies: when a check restored from the state file is first
// included in the periodic full status. Neither ever reports Unknown.
const (
	// RestoreConfirm waits for a fresh probe to confirm the restored
	// state (or to change it, which is notified as a transition).
	RestoreConfirm = "confirm"
	// RestoreInterval includes the restored state once the check's
	// interval has passed, confirmed or not.
	RestoreInterval = "interval"
)

// DefaultStateSaveInterval is how often the state file is written.
const DefaultStateSaveInterval = 30 * time.Second

// stateFile is the JSON form of the state file.
type stateFile struct {
	Version int          `json:"version"`
	Saved   time.Time    `json:"saved"`
	Checks  []savedCheck `json:"checks"`
}

// savedCheck is one check's last known state, tied to its config by a
// fingerprint: a restored state applies only to the same config.
type savedCheck struct {
	ID     uint64          `json:"id"`
	Config string          `json:"config"`
	Status messages.Status `json:"status"`
	Since  time.Time       `json:"since,omitzero"`
}

// fingerprint identifies the probe a config runs. Like an update in
// place, a change of interval, timeout or retries keeps the verdict.
func fingerprint(cfg *messages.Config) string {
	probe := *cfg
	probe.Interval, probe.Timeout, probe.Retries = 0, 0, 0
	b, _ := json.Marshal(probe)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// loadStateFile reads a state file. A missing file is no error and no
// state; a corrupt or foreign one is an error saying why.
func loadStateFile(path string) (map[uint64]savedCheck, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("state file %s: corrupt: %w", path, err)
	}
	if f.Version != stateFileVersion {
		return nil, fmt.Errorf("state file %s: version %d, want %d",
			path, f.Version, stateFileVersion)
	}
	out := make(map[uint64]savedCheck, len(f.Checks))
	for _, c := range f.Checks {
		out[c.ID] = c
	}
	return out, nil
}

// writeStateFile writes checks to path atomically: a temporary file in
// the same directory, synced, then renamed over path.
func writeStateFile(path string, checks []savedCheck) error {
	b, err := json.Marshal(stateFile{
		Version: stateFileVersion, Saved: time.Now().UTC(), Checks: checks,
	})
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	// The rename is durable once the directory is: a power cut must not
	// bring back the file before it.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("state file: syncing its directory: %w", err)
	}
	return nil
}

// saveTick says the state file is due.
type saveTick struct{}

// IgnoreDeadLetterLogging keeps a tick that outlives the manager out of
// the dead-letter log.
func (*saveTick) IgnoreDeadLetterLogging() {}

// loadState reads the state file, if any, for checks to restore.
func (m *managerState) loadState() {
	if m.cfg.StateFile == "" {
		return
	}
	saved, err := loadStateFile(m.cfg.StateFile)
	if err != nil {
		m.log.Error().Err(err).Msg("state_file_ignored")
		return
	}
	m.restorable = saved
	m.log.Info().Int("checks", len(saved)).Str("file", m.cfg.StateFile).
		Msg("state_file_loaded")
}

// restore seeds a new check with its saved state when its config is the
// one the state was saved with.
func (m *manager) restore(rec *checkRecord, cfg *messages.Config) {
	saved, ok := m.restorable[cfg.ID]
	if !ok {
		return
	}
	delete(m.restorable, cfg.ID)
	if saved.Config != fingerprint(cfg) || saved.Status.State == messages.StateUnknown {
		return
	}
	hidden := time.Now().Add(cfg.Interval)
	if m.cfg.RestorePolicy == RestoreConfirm {
		hidden = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	rec.restore(saved, hidden)
}

func (m *manager) armSave(c actor.Context) {
	if m.cfg.StateFile == "" {
		return
	}
	self, root := c.Self(), c.ActorSystem().Root
	m.saveTimer = time.AfterFunc(m.cfg.StateSaveInterval, func() {
		root.Send(self, &saveTick{})
	})
}

// saveState writes every check's state to the state file: in a goroutine
// the manager owns, or, when it drains, at once.
//
// NOTE: the manager only collects the records; what is saved of each (a
// JSON encoding and a hash of its config) is taken by the writer, so
// that a large fleet's save does not hold the manager up. Records are
// safe for concurrent use; one removed meanwhile is saved once more, and
// ignored at restore as any unconfigured ID.
func (m *manager) saveState(c actor.Context, final bool) {
	if m.cfg.StateFile == "" {
		return
	}
	if !final {
		m.armSave(c)
	}
	if m.saving != nil {
		if !final {
			return // The last write is still going.
		}
		<-m.saving
	}
	recs := make([]*checkRecord, 0, len(m.records))
	for _, rec := range m.records {
		recs = append(recs, rec)
	}
	write := func() bool {
		checks := make([]savedCheck, len(recs))
		for i, rec := range recs {
			checks[i] = rec.saved()
		}
		err := writeStateFile(m.cfg.StateFile, checks)
		if err != nil {
			m.log.Error().Err(err).Msg("state_file_not_written")
		}
		return err == nil
	}
	if final {
		if write() {
			m.log.Info().Int("checks", len(recs)).Msg("state_file_written")
		}
		return
	}
	done := make(chan struct{})
	m.saving = done
	self, root := c.Self(), m.root
	go func() {
		defer close(done)
		write()
		root.Send(self, &saveDone{})
	}()
}

// saveDone says a state file write has finished.
type saveDone struct{}

// IgnoreDeadLetterLogging: see saveTick.
func (*saveDone) IgnoreDeadLetterLogging() {}

// stopSaving stops the save timer and waits for a write in progress.
func (m *manager) stopSaving() {
	if m.saveTimer != nil {
		m.saveTimer.Stop()
		m.saveTimer = nil
	}
	if m.saving != nil {
		<-m.saving
		m.saving = nil
	}
}
