// Package actors is the healthcheck supervision tree: one actor per check
// under a manager, a batching notifier, and the socket proxy edge.
//
// # Running the whole server
//
// Start builds an actor system, spawns the tree and returns a Service whose
// Stop drains it in order: checks stop, pending notifications are flushed
// to the edges, then the edges stop.
//
// # Embedding the manager
//
// A load balancer daemon with its own supervision tree spawns only the
// manager, as a child of one of its actors, and names the actor that
// receives the notification batches:
//
//	cfg := actors.DefaultManagerConfig()
//	cfg.Sink = c.Self() // receives *messages.NotificationBatch
//	cfg.Logger = logger
//	manager, err := c.SpawnNamed(actors.NewManager(cfg), "healthchecks")
//
// It then sends the manager *messages.UpdateConfigs with the complete
// desired set of checks, and may request *messages.RequestStatus, which
// the manager answers with *messages.StatusResponse. The package keeps no
// state of its own: every manager owns what it uses.
package actors
