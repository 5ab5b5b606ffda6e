;; bench: the trivial policy of the broker benchmarks.
;; authn: allow every client. authz: allow topics starting with "bench/",
;; ignore the rest. It reads the topic field as a real policy would.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authenticate") (param i32) (result i32) (i32.const 1))
  (func (export "moat_authorize") (param $len i32) (result i32)
    (local $off i32)
    ;; field 5 (topic): descriptor at 1024 + 16 + 5*8
    (local.set $off (i32.load (i32.const 1080)))
    (if (i32.lt_u (i32.load (i32.const 1084)) (i32.const 6)) (then (return (i32.const 3))))
    ;; "bench/" is 62 65 6e 63 68 2f
    (if (i32.and
          (i32.eq (i32.load (i32.add (i32.const 1024) (local.get $off))) (i32.const 0x636e6562))
          (i32.eq (i32.load16_u (i32.add (i32.const 1028) (local.get $off))) (i32.const 0x2f68)))
      (then (return (i32.const 1))))
    (i32.const 3))
)
