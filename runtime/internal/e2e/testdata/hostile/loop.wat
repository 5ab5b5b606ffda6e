;; loop: an authz module that spins forever on every request of a client
;; whose username starts with "evil"; the deadline must stop it.
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
    (if (call $evil) (then (loop $forever (br $forever))))
    (i32.const 3))
)
