;; configure_loop: moat_configure never returns. The load must be refused
;; at the initialisation deadline.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_configure") (param i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3))
)
