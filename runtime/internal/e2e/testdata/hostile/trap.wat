;; trap: an authz module that traps (unreachable) on every request of a
;; client whose username starts with "evil", and ignores every other
;; request. Every evil decision must end as the plugin's on_error.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  ;; field 1 (username): descriptor at 1024 + 16 + 1*8
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665)))) ;; "evil"
  (func (export "moat_authorize") (param i32) (result i32)
    (if (call $evil) (then unreachable))
    (i32.const 3))
)
