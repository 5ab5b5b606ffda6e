;; loopy: allows every topic except those starting with "loop", on which it
;; spins forever. The broker must stop it at the plugin's deadline.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param $len i32) (result i32)
    (local $off i32)
    ;; field 5 (topic): descriptor at 1024 + 16 + 5*8
    (local.set $off (i32.load (i32.const 1080)))
    (if (i32.ge_u (i32.load (i32.const 1084)) (i32.const 4))
      (then
        ;; "loop" is 6c 6f 6f 70
        (if (i32.eq (i32.load (i32.add (i32.const 1024) (local.get $off))) (i32.const 0x706f6f6c))
          (then (loop $forever (br $forever))))))
    (i32.const 1))
)
