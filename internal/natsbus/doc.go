// Package natsbus carries dispatches and receipts over NATS JetStream: the
// embedded server and its account layout, the streams and consumers, the
// outbox relay that publishes what the store has committed, and the receipt
// consumer that feeds progress back.
//
// Authentication is NATS's decentralised JWT model (keys.go): an operator
// the servers trust, a system account, the coordinator's account TOCSIN
// and one account per provider, each a JWT signed by the operator. The
// servers run a full account resolver; a new or changed account is pushed
// to every server through the system account (resolver.go), at run time,
// with no configuration rewritten and no reload.
//
// Isolation between providers comes from NATS accounts, not only from
// permissions: each provider has an account of its own that imports exactly
// its consumer's API subjects, its acknowledgements and its receipt subject
// from the coordinator's account, each import with an activation token the
// coordinator signed for that account and that subject alone. Replies to a provider's pulls travel to
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

// ProviderAccountName is the name of a provider's NATS account.
func ProviderAccountName(provider string) string { return "PROVIDER_" + provider }
