package bridge

import (
	"bytes"
	"encoding/gob"
	"net/rpc"
	"path/filepath"
	"testing"
)

// FuzzDecodeChecks decodes arbitrary bytes as a Healthchecks reply, as
// EngineClient does, and converts what decodes: neither may panic, and
// ToConfigs must account for every config with a valid one or a reason.
func FuzzDecodeChecks(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.gob"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, file := range files {
		f.Add(readTestdata(f, filepath.Base(file)))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		dec := gob.NewDecoder(bytes.NewReader(data))
		var checks Checks
		if dec.Decode(&rpc.Response{}) != nil || dec.Decode(&checks) != nil {
			return
		}

		configs, rejected := ToConfigs(&checks)
		if got, want := len(configs)+len(rejected), len(checks.Configs); got != want {
			t.Errorf("ToConfigs: %d configs and %d rejected of %d",
				len(configs), len(rejected), want)
		}
		for i, c := range configs {
			if err := c.Validate(); err != nil {
				t.Errorf("configs[%d] (%d) is invalid: %v", i, c.ID, err)
			}
			if i > 0 && configs[i-1].ID >= c.ID {
				t.Errorf("configs[%d]: ID %d after %d", i, c.ID, configs[i-1].ID)
			}
			if _, ok := rejected[c.ID]; ok {
				t.Errorf("config %d both converted and rejected", c.ID)
			}
			if c.IP.Is4In6() {
				t.Errorf("config %d: IP %v is v4-mapped", c.ID, c.IP)
			}
		}
	})
}
