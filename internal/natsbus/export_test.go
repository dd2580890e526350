package natsbus

// Faults the tests inject into the embedded server.

// SwitchOffJetStream does what nats-server does when its store cannot
// write: JetStream goes off and stays off.
func (e *Embedded) SwitchOffJetStream() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv.Load().ShutdownJetStream()
}

// Stop stops the server as a crash of its node would.
func (e *Embedded) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srv.Load().Shutdown()
	e.srv.Load().WaitForShutdown()
}

// Restart starts it again on the same port and store.
func (e *Embedded) Restart() error { return e.restart() }

// DispatchMsg is the message the relay publishes for an outbox entry, for
// tests that publish one as a crashed relay would have.
var DispatchMsg = dispatchMsg

// How failures are told apart, for TestFailureKinds.
var (
	Unanswered      = unanswered
	StreamAbsent    = streamAbsent
	ErrNotConnected = errNotConnected
)
