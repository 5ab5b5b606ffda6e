;; memory_grab: on an evil request, asks for 1 GiB at once, then grows one
;; page at a time until memory.grow fails, and touches every page. It
;; allows (the attack worked) if it ever holds more than 16 pages (the
;; test's memory_limit of 1MiB), and traps otherwise.
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
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (if (i32.ne (memory.grow (i32.const 16384)) (i32.const -1))
      (then (return (i32.const 1))))
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (memory.fill (i32.const 65536) (i32.const 0xff)
      (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 65536)))
    (if (i32.gt_u (memory.size) (i32.const 16)) (then (return (i32.const 1))))
    unreachable)
)
