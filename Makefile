# The two commands a newcomer needs: `make demo` and `make test`.

GO       ?= go
BIN      := bin
FUZZTIME ?= 30s

.PHONY: all build demo test vet fuzz soak clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## demo: real backends on loopback, a simulated Seesaw Engine whose
## checks probe them, and the server with the Engine bridge in-process;
## prints every state change the Engine receives. Ctrl-C stops all of it.
## DEMO_FLAGS adds hcdemo flags, e.g. DEMO_FLAGS='-mode split' (the bridge
## as healthcheck-proxy) or '-mode socket' (no Engine); see hcdemo -h.
demo: build
	$(BIN)/hcdemo -server $(BIN)/healthcheck-server \
	  -proxy $(BIN)/healthcheck-proxy $(DEMO_FLAGS)

## test: vet, then every test under the race detector (fuzz seed corpora
## included).
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## fuzz: run each fuzz target for FUZZTIME.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## soak: 10,000 checks under churn, faults, Engine restarts and bridge
## reconnects for SOAK_DURATION after they first converge; fails on
## unbounded growth or a wrong final state. The growth verdict leaves
## out the first minute and needs 10 samples 10s apart after it, so
## SOAK_DURATION must be at least 2m40s (shorter runs fail at once);
## growth must stand out of the samples' noise, so a run of a few minutes
## catches only fast growth and the default 10m slow growth too.
SOAK_DURATION ?= 10m
soak:
	$(GO) run ./tests/soak -duration $(SOAK_DURATION)

## bench: the load harness (tests/load): BENCH_N checks at a 10s
## interval against loopback backends, beside the probe floor and a
## naive design, each in its own process, and the split deployment's
## latency through bin/healthcheck-proxy; prints one table (README,
## Performance). About 5 minutes at 100,000 checks on 2 cores.
## BENCH_FLAGS adds flags, e.g. BENCH_FLAGS='-mode process' (the server
## as bin/healthcheck-server) or '-profile prof -out bench.json'.
BENCH_N ?= 100000
.PHONY: bench
bench: build
	$(GO) run ./tests/load -n $(BENCH_N) -server $(BIN)/healthcheck-server \
	  -proxy $(BIN)/healthcheck-proxy $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
