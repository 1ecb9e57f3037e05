package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// lagMetric is the server's histogram of probe start lag.
const lagMetric = "hc_probe_start_lag_seconds"

// lagBuckets is a snapshot of a cumulative histogram.
type lagBuckets struct {
	Bounds []float64 // upper bounds in seconds, ascending, +Inf last
	Cum    []float64 // cumulative counts per bound
	Count  float64
}

// gatherLag reads the lag histogram from a registry.
func gatherLag(g prometheus.Gatherer) lagBuckets {
	var lb lagBuckets
	mfs, err := g.Gather()
	if err != nil {
		return lb
	}
	for _, mf := range mfs {
		if mf.GetName() != lagMetric || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		for _, b := range h.GetBucket() {
			lb.Bounds = append(lb.Bounds, b.GetUpperBound())
			lb.Cum = append(lb.Cum, float64(b.GetCumulativeCount()))
		}
		lb.Bounds = append(lb.Bounds, math.Inf(1))
		lb.Cum = append(lb.Cum, float64(h.GetSampleCount()))
		lb.Count = float64(h.GetSampleCount())
	}
	return lb
}

// sub returns the histogram of what was added since earlier.
func (lb lagBuckets) sub(earlier lagBuckets) lagBuckets {
	out := lagBuckets{Bounds: lb.Bounds, Count: lb.Count - earlier.Count}
	out.Cum = make([]float64, len(lb.Cum))
	for i := range lb.Cum {
		out.Cum[i] = lb.Cum[i]
		if i < len(earlier.Cum) {
			out.Cum[i] -= earlier.Cum[i]
		}
	}
	return out
}

// summary returns the quantiles as the bucket bounds they fall under, and
// the fraction of probes under the bound nearest 25 ms.
func (lb lagBuckets) summary() *bucketLag {
	bl := &bucketLag{N: int64(lb.Count)}
	if lb.Count == 0 {
		return bl
	}
	bl.P50 = lb.bound(0.50)
	bl.P99 = lb.bound(0.99)
	for i, b := range lb.Bounds {
		if b >= 0.025 {
			bl.Under25ms = lb.Cum[i] / lb.Count
			bl.BucketNote = fmt.Sprintf("share under %s",
				time.Duration(b*float64(time.Second)))
			break
		}
	}
	return bl
}

// bound returns the smallest bucket bound under which fraction q falls.
func (lb lagBuckets) bound(q float64) time.Duration {
	for i, c := range lb.Cum {
		if c >= q*lb.Count {
			if math.IsInf(lb.Bounds[i], 1) {
				return -1
			}
			return time.Duration(lb.Bounds[i] * float64(time.Second))
		}
	}
	return -1
}

// liveChecks returns the number of live check actors, from the
// Telemetry's hc_actors gauge, or -1 when g cannot be gathered.
func liveChecks(g prometheus.Gatherer) int {
	m, err := findMetric(g, "hc_actors", map[string]string{"kind": "check"})
	if err != nil {
		return -1
	}
	return int(m.GetGauge().GetValue())
}

// findMetric returns the sample of the metric family name whose labels
// include every one of want, or an empty sample when there is none.
func findMetric(g prometheus.Gatherer, name string,
	want map[string]string) (*dto.Metric, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				return m, nil
			}
		}
	}
	return &dto.Metric{}, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(want)
}

// scrape is one read of a server's /metrics, in the text format.
type scrape struct {
	lag lagBuckets
	// values holds each sample without a histogram suffix, by its full
	// name with labels, e.g. `hc_checks{state="unknown"}`.
	values map[string]float64
}

// scrapeMetrics reads url and parses what the harness needs.
func scrapeMetrics(client *http.Client, url string) (*scrape, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (*scrape, error) {
	sc := &scrape{values: make(map[string]float64)}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, raw := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, lagMetric+"_bucket{"):
			le := strings.TrimSuffix(strings.TrimPrefix(name,
				lagMetric+`_bucket{le="`), `"}`)
			b, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			sc.lag.Bounds = append(sc.lag.Bounds, b)
			sc.lag.Cum = append(sc.lag.Cum, v)
		case name == lagMetric+"_count":
			sc.lag.Count = v
		default:
			sc.values[name] = v
		}
	}
	return sc, s.Err()
}

// sum adds the samples whose name starts with prefix.
func (sc *scrape) sum(prefix string) float64 {
	var t float64
	for k, v := range sc.values {
		if strings.HasPrefix(k, prefix) {
			t += v
		}
	}
	return t
}
