package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Listener serves /metrics, /healthz and /readyz.
type Listener struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// Listen opens addr and serves m's registry on it:
//
//   - /metrics: the Prometheus exposition format;
//   - /healthz: 200 while the process serves HTTP at all (liveness);
//   - /readyz: 200 when ready returns nil, else 503 with its error
//     (readiness: listeners accepting, policy loaded, store open).
//
// Only GET and HEAD are answered. The caller closes the Listener.
func Listen(addr string, m *Metrics, ready func() error, log *slog.Logger) (*Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: false,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	l := &Listener{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		err: make(chan error, 1),
	}
	go func() { l.err <- l.srv.Serve(ln) }()
	log.Info("serving metrics", "address", ln.Addr().String())
	return l, nil
}

// Addr returns the bound address (the real port when the config said 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops serving, waiting for running scrapes within ctx.
func (l *Listener) Close(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if serr := <-l.err; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: close: %w", err)
	}
	return nil
}
