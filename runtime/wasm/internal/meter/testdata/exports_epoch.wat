;; Already exports moat.epoch: instrumenting must fail.
(module
  (global (export "moat.epoch") (mut i64) (i64.const 0)))
