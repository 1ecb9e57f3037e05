// Package messages is the vocabulary shared by the supervision tree, the
// socket proxy and the Engine bridge: check configurations and statuses, the
// actor messages that carry them, and the JSON-lines protocol that encodes
// them on the proxy socket.
//
// Every message here is sent by pointer and never mutated after sending.
package messages
