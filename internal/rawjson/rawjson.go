// Package rawjson walks the members of JSON objects without decoding them:
// the keys as they are written and the values as byte slices of the input.
// It serves the direct path, which reads a few members of a request or a
// response and passes the rest on as bytes; encoding/json's reflection
// and validation per Unmarshal were most of what reading them cost.
//
// A walk trusts its input to be valid JSON: check it once with
// encoding/json's Valid first. Keys are given raw, escapes not undone, so
// a caller comparing them with the names it knows sees an escaped key as
// an unknown one, and should treat the input as out of its shape (where
// encoding/json would match keys without regard to case or escapes).
package rawjson

import "unicode/utf8"

// Members calls fn with the key and value of each member of the JSON
// object obj, in order, until fn returns false. It reports whether obj is
// an object (with only whitespace around it) and fn never returned false.
// obj must be valid JSON.
func Members(obj []byte, fn func(key, value []byte) bool) bool {
	i := space(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = space(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return space(obj, i+1) == len(obj)
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return false
		}
		end := skipString(obj, i)
		key := obj[i+1 : end-1]
		i = space(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = space(obj, i+1)
		end = skip(obj, i)
		if end <= i || !fn(key, obj[i:end]) {
			return false
		}
		i = space(obj, end)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case ',':
			i = space(obj, i+1)
		case '}':
			return space(obj, i+1) == len(obj)
		default:
			return false
		}
	}
	return false
}

// space returns the index of the first non-whitespace byte of b at or
// after i.
func space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skip returns the index just past the value starting at b[i].
func skip(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	// A number, true, false or null: up to the next delimiter.
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// Plain reports whether the JSON string s (with its quotes) has no escape
// and is valid UTF-8, so that its content is s[1:len(s)-1] as it is.
func Plain(s []byte) bool {
	return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && PlainKey(s[1:len(s)-1])
}

// PlainKey reports whether the raw key k (as Members gives it) reads as it
// is written: no escape, valid UTF-8 (encoding/json would replace invalid
// bytes).
func PlainKey(k []byte) bool {
	for _, c := range k {
		if c == '\\' || c == '"' {
			return false
		}
	}
	return utf8.Valid(k)
}
