package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Setup turns tracing on when the standard OpenTelemetry variables ask
// for it, read with getenv (so that a .env file counts as the environment
// does): OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// set, or OTEL_TRACES_EXPORTER=otlp; off with OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none. Spans go by OTLP over HTTP (protobuf) in
// batches; OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_HEADERS) are sent with
// them, OTEL_SERVICE_NAME names the service ("connectors") and
// OTEL_RESOURCE_ATTRIBUTES adds to it, OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG choose the sampler (parentbased_always_on).
//
// It returns the function that flushes and ends tracing; a configuration
// it cannot honour is an error naming the variable. A failed export is
// logged on log (telemetry_export_failed); the calls go on.
func Setup(getenv func(string) string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	exporter := getenv("OTEL_TRACES_EXPORTER")
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		endpoint = strings.TrimSuffix(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	switch {
	case strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true"), exporter == "none":
		return none, nil
	case exporter == "" && endpoint == "":
		return none, nil
	case exporter != "" && exporter != "otlp":
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q: want otlp or none", exporter)
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("%s: %q: only http/protobuf is supported", v, p)
		}
	}
	opts := []otlptracehttp.Option{}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q is not an http(s) URL", endpoint)
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	}
	headers, err := parseHeaders(getenv("OTEL_EXPORTER_OTLP_HEADERS"), getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS"))
	if err != nil {
		return nil, err
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	sampler, err := parseSampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry exporter: %w", err)
	}
	res, err := serviceResource(getenv("OTEL_SERVICE_NAME"), getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry_export_failed", "error", err.Error())
	}))
	otel.SetTracerProvider(tp)
	on.Store(true)
	return func(ctx context.Context) error {
		on.Store(false)
		otel.SetTracerProvider(noop.NewTracerProvider())
		return tp.Shutdown(ctx)
	}, nil
}

// parseHeaders reads "k=v,k2=v2" (values URL-encoded), the second list
// winning on a clash.
func parseHeaders(lists ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, list := range lists {
		for _, kv := range strings.Split(list, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			val, err := url.QueryUnescape(strings.TrimSpace(v))
			if !ok || strings.TrimSpace(k) == "" || err != nil {
				return nil, errors.New("OTEL_EXPORTER_OTLP_HEADERS: want key=value pairs separated by commas")
			}
			out[strings.TrimSpace(k)] = val
		}
	}
	return out, nil
}

func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not a sampler this gateway knows", name)
}

func serviceResource(name, attrs string) (*resource.Resource, error) {
	if name == "" {
		name = "connectors"
	}
	kvs := []attribute.KeyValue{attribute.String("service.name", name)}
	for _, kv := range strings.Split(attrs, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New("OTEL_RESOURCE_ATTRIBUTES: want key=value pairs separated by commas")
		}
		if k = strings.TrimSpace(k); k != "service.name" {
			val, _ := url.QueryUnescape(strings.TrimSpace(v))
			kvs = append(kvs, attribute.String(k, val))
		}
	}
	return resource.NewSchemaless(kvs...), nil
}
