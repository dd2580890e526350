package tocsin

// scanBroadcasts calls fn for every broadcast matching q, page by page,
// within one read transaction.
func scanBroadcasts(tx ReadTx, q Query, fn func(*Broadcast)) error {
	q.Limit = MaxPageSize
	for {
		page, err := tx.Broadcasts(q)
		if err != nil {
			return err
		}
		for _, b := range page.Broadcasts {
			fn(b)
		}
		if q.Cursor = page.NextCursor; q.Cursor == "" {
			return nil
		}
	}
}
