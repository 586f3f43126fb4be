package main

import (
	"io"
	"log/slog"
)

// newLogger returns the daemon's structured logger, writing to w in the
// configured format from the configured level up.
func newLogger(w io.Writer, c *Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: parseLevel(c.LogLevel)}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo // values are checked when the config is loaded
	}
	return l
}
