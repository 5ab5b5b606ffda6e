;; A start function that never returns. Uninstrumented, instantiating this
;; module hangs; instrumented, the host calls moat.start under a deadline.
(module
  (func $init (loop $l (br $l)))
  (start $init))
