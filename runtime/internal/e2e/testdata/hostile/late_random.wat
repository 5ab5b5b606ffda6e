;; late_random: an authn module that, for an evil user, fills its 16 MiB
;; memory with WASI random_get 40 times (640 MiB of random bytes in host
;; code, about a second) and then allows. The allow comes after the
;; deadline and must not be used.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authenticate") (param i32) (result i32)
    (local $i i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (local.set $i (i32.const 40))
    (loop $more
      (drop (call $random_get (i32.const 0) (i32.const 0x1000000)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $more (local.get $i)))
    (i32.const 1))
)
