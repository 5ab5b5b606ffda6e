;; The floor for BenchmarkCallNoop: an export that does nothing.
(module (func (export "noop")))
