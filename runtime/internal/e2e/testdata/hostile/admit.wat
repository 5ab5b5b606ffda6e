;; admit: the well-behaved authn module of the suite's brokers. It ignores
;; every client, so that [auth] no_match = "allow" admits them, the evil
;; ones included: their hostile requests come later, to the module under
;; test.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authenticate") (param i32) (result i32) (i32.const 3))
)
