package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/connectors-gateway/connectors/telemetry"
)

// startTracing turns OpenTelemetry tracing on when the OTEL_* variables
// ask for it (telemetry.Setup), until Run's end, which flushes the spans
// still held (for at most five seconds).
func (m *Main) startTracing(log *slog.Logger) error {
	shutdown, err := telemetry.Setup(m.Getenv, log)
	if err != nil {
		return err
	}
	m.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return shutdown(ctx)
	})
	return nil
}
