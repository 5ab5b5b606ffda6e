;; abi_example: the module of sdk/ABI.md §8, extracted by TestABIExample,
;; which fails when the two differ.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))

  ;; The buffer is [1024, 1024 + size): grow memory to hold it.
  (func (export "moat_buffer") (param $size i32) (result i32)
    (local $pages i32)
    ;; pages needed: ceil((1024 + size) / 65536)
    (local.set $pages
      (i32.shr_u (i32.add (local.get $size) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (i32.const 1024))

  (func (export "moat_authorize") (param $len i32) (result i32)
    (local $topic i32)
    ;; field 5 (topic): descriptor at 1024 + 16 + 5*8 = 1080 (offset), 1084 (length)
    (if (i32.lt_u (i32.load (i32.const 1084)) (i32.const 7))
      (then (return (i32.const 3))))                        ;; ignore
    (local.set $topic (i32.add (i32.const 1024) (i32.load (i32.const 1080))))
    (if (i32.and
          (i32.and
            (i32.eq (i32.load (local.get $topic)) (i32.const 0x6c627570))   ;; "publ"
            (i32.eq (i32.load16_u offset=4 (local.get $topic)) (i32.const 0x6369))) ;; "ic"
          (i32.eq (i32.load8_u offset=6 (local.get $topic)) (i32.const 0x2f)))      ;; "/"
      (then (return (i32.const 1))))                        ;; allow
    (i32.const 3))                                          ;; ignore
)
