// Package textx holds deskrelay's text helpers shared by several packages:
// today Truncate, the one way to shorten a text for a log line, an error
// message or a stored field without cutting a UTF-8 character in two.
//
// It must not import any other deskrelay package. (Package zendesk, which
// imports no deskrelay package, keeps a private copy of Truncate.)
package textx
