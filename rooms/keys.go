package rooms

import "strings"

// keyEscaper escapes '%' first (as "%25"), so that an escaped id is never
// confused with another id's escape.
var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A", "{", "%7B", "}", "%7D")

// KeyPart escapes an id (a person, a token id, a program) for use as one
// component of a storage key name: ids containing ':' can never make two
// different ids share a key, and ids containing '{' or '}' never add a
// Redis Cluster hash tag of their own. Every store uses this one escaper;
// ids of the room and program grammar (idGrammar) come out unchanged.
func KeyPart(id string) string { return keyEscaper.Replace(id) }
