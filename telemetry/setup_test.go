package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestSetup: tracing is off unless an OTLP endpoint or exporter is named,
// and off when disabled; what it cannot honour is an error naming the
// variable; on, the spans record, and after shutdown they do not.
func TestSetup(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		on   bool
		fail string // the variable the error names
	}{
		{env: nil},
		{env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, fail: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, fail: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, fail: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, fail: "OTEL_EXPORTER_OTLP_HEADERS"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "sometimes"}, fail: "OTEL_TRACES_SAMPLER"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER_ARG": "2"}, fail: "OTEL_TRACES_SAMPLER_ARG"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_RESOURCE_ATTRIBUTES": "=x"}, fail: "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		shutdown, err := Setup(func(k string) string { return c.env[k] }, slog.New(slog.DiscardHandler))
		if c.fail != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.fail) {
				t.Errorf("%v: %v, want an error naming %s", c.env, err, c.fail)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		_, span := Start(context.Background(), "probe")
		if (span != nil && span.IsRecording()) != c.on || On() != c.on {
			t.Errorf("%v: tracing on = %v, want %v", c.env, On(), c.on)
		}
		End(span, nil)
		_ = shutdown(context.Background())
		if On() {
			t.Errorf("%v: still on after shutdown", c.env)
		}
	}
}
