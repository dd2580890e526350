// Package natsbus carries dispatches and receipts over NATS JetStream: the
// embedded server and its account layout, the streams and consumers, the
// outbox relay that publishes what the store has committed, and the receipt
// consumer that feeds progress back.
//
// Isolation between providers comes from NATS accounts, not only from
// permissions: each provider has an account of its own that imports exactly
// its consumer's API subjects, its acknowledgements and its receipt subject
// from the coordinator's account. Replies to a provider's pulls travel to
// inboxes in that provider's account, where no other provider can subscribe,
// so standard clients (the nats CLI included) work with default settings.
package natsbus

// Names shared with providers; DESIGN.md fixes them.
const (
	DispatchStream  = "TOCSIN_DISPATCH"
	ReceiptStream   = "TOCSIN_RECEIPTS"
	DispatchPrefix  = "tocsin.dispatch."
	ReceiptPrefix   = "tocsin.receipt."
	ReceiptConsumer = "tocsin-coordinator"

	// CoordinatorAccount owns the streams; CoordinatorUser is the
	// coordinator's own connection.
	CoordinatorAccount = "TOCSIN"
	CoordinatorUser    = "tocsin"
)

// DispatchSubject is where a provider's dispatches are published.
func DispatchSubject(provider string) string { return DispatchPrefix + provider }

// ReceiptSubject is where a provider publishes its receipts.
func ReceiptSubject(provider string) string { return ReceiptPrefix + provider }

// ProviderAccount is the NATS account of a provider.
func ProviderAccount(provider string) string { return "PROVIDER_" + provider }
