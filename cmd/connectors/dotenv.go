package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/joho/godotenv"
)

// loadDotEnv reads the .env file m.DotEnv names (godotenv's format: KEY=value
// lines, quotes, comments, "export") into the environment m reads: a
// variable the real environment sets (non-empty) wins. A missing file is
// no error; a malformed one is, naming the file, and nothing of it is used.
// The file's values are given to m.Getenv only, never put in the process's
// environment, so that no upstream process started by the gateway inherits
// them.
func (m *Main) loadDotEnv() error {
	if m.DotEnv == "" {
		return nil
	}
	vals, err := godotenv.Read(m.DotEnv)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w (see .env.example)", m.DotEnv, err)
	}
	real := m.Getenv
	m.Getenv = func(k string) string {
		if v := real(k); v != "" {
			return v
		}
		return vals[k]
	}
	m.DotEnv = "" // read once
	return nil
}
