// Package validate is how deskrelay's packages report a bad Config field:
// a *FieldError names the package and the Go field (relay: OrderGapTimeout:
// must be positive), and package main maps the field to the setting an
// operator wrote (DESKRELAY_ORDER_GAP_TIMEOUT, or one account's field when
// there are several). It also holds the value checks more than one package
// needs (an http(s) URL, a Zendesk subdomain), written once.
//
// It must not import any other deskrelay package.
package validate
