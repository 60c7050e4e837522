// Package accounts loads DESKRELAY_ACCOUNTS_FILE: the Zendesk accounts one
// deskrelay deployment serves, each with the per-account forms of the
// single-account settings (docs/accounts.example.yaml shows every field).
//
// The file itself holds no secret (it may be a ConfigMap): every secret is
// named by a `<field>_file` path and read from that file, its surrounding
// whitespace trimmed. A relative path is relative to the accounts file's
// directory. Load reports every problem of a file at once, one line each,
// naming the account and the field (*Error); no error, String or log field
// ever shows a secret.
//
// It imports internal/budget (Rate), internal/validate, zendesk and
// internal/zdoauth (whose Config rules it reuses); it must not import a flow
// or package main.
package accounts
