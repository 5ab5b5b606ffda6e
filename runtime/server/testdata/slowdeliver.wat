;; slowdeliver: allows every authz request, except a delivery to a client
;; whose id starts with "slow", on which it spins until its deadline: a
;; plugin in trouble with some subscribers only.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param $len i32) (result i32)
    ;; action is byte 1 of the header; field 0 (client_id): descriptor at
    ;; 1024 + 16
    (if (i32.and
          (i32.eq (i32.load8_u (i32.const 1025)) (i32.const 3))
          (i32.ge_u (i32.load (i32.const 1044)) (i32.const 4)))
      (then
        ;; "slow" is 73 6c 6f 77
        (if (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1040)))) (i32.const 0x776f6c73))
          (then (loop $forever (br $forever))))))
    (i32.const 1))
)
