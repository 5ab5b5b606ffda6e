;; slow_deliver: an authz module whose deliver checks (action 3) for a
;; subscriber whose username starts with "evil" spin until the deadline.
;; Every other request is ignored. Ten such subscribers to "#" make every
;; publish through the broker wait for ten timeouts unless the broker
;; keeps them off the publisher's path.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (if (i32.and (call $evil) (i32.eq (i32.load8_u (i32.const 1025)) (i32.const 3)))
      (then (loop $forever (br $forever))))
    (i32.const 3))
)
