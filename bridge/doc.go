// Package bridge speaks Seesaw's Engine RPC protocol: the gob wire types,
// their conversion to messages.Config, and a client for the Engine's socket.
package bridge
