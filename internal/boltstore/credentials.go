package boltstore

import (
	"bytes"
	"fmt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Credentials (sessions and service tokens) are kept by id, with an index
// by organisation (org NUL id) so that ending an organisation's
// credentials touches only its own.

func credentialOrgKey(org, id string) []byte { return []byte(org + "\x00" + id) }

func (t *tx) Credential(id string) (*tocsin.Credential, error) {
	return cached(t, t.sharedCreds, bucketCredentials, "credential", id)
}

func (t *tx) Credentials(org string) ([]*tocsin.Credential, error) {
	if org == "" {
		return getAll[tocsin.Credential](t, bucketCredentials)
	}
	var out []*tocsin.Credential
	prefix := credentialOrgKey(org, "")
	c := t.btx.Bucket(bucketCredsByOrg).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		cred, err := t.Credential(string(k[len(prefix):]))
		if err != nil {
			return nil, fmt.Errorf("credential index %q: %w", k, err)
		}
		out = append(out, cred)
	}
	return out, nil
}

func (t *tx) PutCredential(c *tocsin.Credential) error {
	if c.ID == "" || c.Org == "" {
		return fmt.Errorf("put credential: id and org are required")
	}
	if err := t.DeleteCredential(c.ID); err != nil { // drops an index entry under another org
		return err
	}
	t.sharedCreds = wrote(t, t.sharedCreds)
	if err := t.put(bucketCredentials, []byte(c.ID), c); err != nil {
		return err
	}
	if err := t.btx.Bucket(bucketCredsByOrg).Put(credentialOrgKey(c.Org, c.ID), nil); err != nil {
		return fmt.Errorf("index credential %s: %w", c.ID, err)
	}
	return nil
}

func (t *tx) DeleteCredential(id string) error {
	old, err := t.Credential(id)
	if tocsin.IsCode(err, tocsin.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t.sharedCreds = wrote(t, t.sharedCreds)
	if err := t.btx.Bucket(bucketCredsByOrg).Delete(credentialOrgKey(old.Org, id)); err != nil {
		return fmt.Errorf("unindex credential %s: %w", id, err)
	}
	if err := t.btx.Bucket(bucketCredentials).Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete credential %s: %w", id, err)
	}
	return nil
}
