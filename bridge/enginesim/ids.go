package enginesim

import (
	"fmt"
	"net/netip"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// Update says what a SetChecks call changed.
type Update struct {
	// IDs holds the ID of each check given, in order. Identical checks
	// without an explicit ID share one, as the Engine dedups them.
	IDs []uint64
	// Added and Removed count IDs that appeared and disappeared.
	// Changed counts explicit IDs whose content changed, and pairs of a
	// removed and an added ID whose checks have the same type, target
	// and mode: an edited check, which the Engine renumbers.
	Added, Removed, Changed int
	// Unchanged counts IDs whose config is the very same as before.
	Unchanged int
}

// registry numbers checks and holds the served configs. It is guarded by
// the Server's mutex.
type registry struct {
	next     uint64 // next automatic ID
	nextPing uint16 // next echo ID of an icmp check

	configs map[uint64]*bridge.Config // served; nil when empty
	specs   map[uint64]spec           // of each served ID
	auto    map[spec]uint64           // automatic IDs of served specs
	marks   map[markKey]int           // allocated from the pool
}

// markKey is what the Engine allocates a mark for.
type markKey struct {
	backend netip.Addr
	mode    int
}

// pending is an update being built; apply commits it only when complete.
type pending struct {
	configs map[uint64]*bridge.Config
	specs   map[uint64]spec
	auto    map[spec]uint64
	marks   map[markKey]int
	taken   map[uint64]bool // explicit IDs of the update
	used    map[int]bool    // explicit marks of the update

	inUse    map[int]bool // marks allocMark must skip; nil until needed
	nextMark int          // where allocMark looks first
}

// apply replaces the served configs by those of checks, whose specs are
// specs. An unchanged check keeps its ID and its very config, a changed
// or new one gets a new config, and an automatic ID is never reused.
func (r *registry) apply(checks []Check, specs []spec) (Update, error) {
	p := newPending(checks, specs)
	u := Update{IDs: make([]uint64, len(checks))}

	// Explicit IDs first, so that automatic ones can avoid them.
	for i, c := range checks {
		if c.ID != 0 {
			if err := r.place(p, c.ID, specs[i]); err != nil {
				return Update{}, err
			}
			u.IDs[i] = c.ID
		}
	}
	for i, c := range checks {
		if c.ID == 0 {
			id, err := r.placeAuto(p, specs[i])
			if err != nil {
				return Update{}, err
			}
			u.IDs[i] = id
		}
	}

	r.diff(p, &u)
	r.commit(p)
	return u, nil
}

// newPending returns an empty update of checks, noting their explicit
// IDs and marks.
func newPending(checks []Check, specs []spec) *pending {
	p := &pending{
		configs: make(map[uint64]*bridge.Config),
		specs:   make(map[uint64]spec),
		auto:    make(map[spec]uint64),
		marks:   make(map[markKey]int),
		taken:   make(map[uint64]bool),
		used:    make(map[int]bool),
	}
	for i, c := range checks {
		if c.ID != 0 {
			p.taken[c.ID] = true
		}
		if specs[i].mode != bridge.ModePlain && specs[i].mark != 0 {
			p.used[specs[i].mark] = true
		}
	}
	return p
}

// placeAuto numbers sp as the Engine does and places it.
func (r *registry) placeAuto(p *pending, sp spec) (uint64, error) {
	if id, ok := p.auto[sp]; ok {
		return id, nil // a duplicate within the update
	}
	id, ok := r.auto[sp]
	if !ok || p.taken[id] {
		id = r.allocID(p)
	}
	p.auto[sp] = id
	return id, r.place(p, id, sp)
}

// allocID returns the next automatic ID that no explicit ID takes.
func (r *registry) allocID(p *pending) uint64 {
	for {
		id := r.next
		r.next++
		if !p.taken[id] {
			return id
		}
	}
}

// place serves sp under id: with its current config when the ID already
// serves the same spec, else with a new one.
func (r *registry) place(p *pending, id uint64, sp spec) error {
	mark, err := r.markFor(p, sp)
	if err != nil {
		return err
	}
	cfg, ok := r.configs[id]
	if !ok || r.specs[id] != sp {
		var pingID uint16
		if sp.typ == TypeICMP {
			pingID = r.nextPing
			r.nextPing++
		}
		cfg = newConfig(id, sp, mark, pingID)
	}
	p.configs[id] = cfg
	p.specs[id] = sp
	return nil
}

// markFor returns sp's mark: its own, or the pool's mark of its backend
// and mode, allocated if needed.
func (r *registry) markFor(p *pending, sp spec) (int, error) {
	if sp.mode == bridge.ModePlain || sp.mark != 0 {
		return sp.mark, nil
	}
	k := markKey{backend: sp.host, mode: sp.mode}
	if m, ok := p.marks[k]; ok {
		return m, nil
	}
	if m, ok := r.marks[k]; ok {
		p.marks[k] = m
		return m, nil
	}
	m, err := r.allocMark(p)
	if err != nil {
		return 0, err
	}
	p.marks[k] = m
	return m, nil
}

// allocMark returns the lowest mark of the pool that neither the served
// checks nor the update use.
func (r *registry) allocMark(p *pending) (int, error) {
	if p.inUse == nil {
		p.inUse = make(map[int]bool, len(r.marks)+len(p.used))
		p.nextMark = MarkBase
		for _, m := range r.marks {
			p.inUse[m] = true
		}
		for m := range p.used {
			p.inUse[m] = true
		}
	}

	// Marks only become used during an update, so the lowest free one
	// never moves down.
	for ; p.nextMark < MarkBase+MarkPoolSize; p.nextMark++ {
		if !p.inUse[p.nextMark] {
			p.inUse[p.nextMark] = true
			return p.nextMark, nil
		}
	}
	return 0, fmt.Errorf("allocating a mark: %w", ErrMarksExhausted)
}

// diff counts in u what p changes.
func (r *registry) diff(p *pending, u *Update) {
	var added, removed []spec
	for id, cfg := range p.configs {
		old, ok := r.configs[id]
		switch {
		case !ok:
			added = append(added, p.specs[id])
		case old == cfg:
			u.Unchanged++
		default:
			u.Changed++
		}
	}
	for id := range r.configs {
		if _, ok := p.configs[id]; !ok {
			removed = append(removed, r.specs[id])
		}
	}

	// Pair an added check with a removed one that probes the same target.
	gone := make(map[target]int)
	for _, sp := range removed {
		gone[targetOf(sp)]++
	}
	for _, sp := range added {
		if t := targetOf(sp); gone[t] > 0 {
			gone[t]--
			u.Changed++
			continue
		}
		u.Added++
	}
	u.Removed = len(removed) - (len(added) - u.Added)
}

// target is what identifies a check to a person: its type, target and
// mode.
type target struct {
	typ      string
	ip, host netip.Addr
	port     int
	mode     int
}

// targetOf returns sp's target.
func targetOf(sp spec) target {
	return target{typ: sp.typ, ip: sp.ip, host: sp.host, port: sp.port, mode: sp.mode}
}

// commit makes p the served set; the Engine answers nil for no checks.
func (r *registry) commit(p *pending) {
	r.configs = p.configs
	if len(r.configs) == 0 {
		r.configs = nil
	}
	r.specs = p.specs
	r.auto = p.auto
	r.marks = p.marks
}
