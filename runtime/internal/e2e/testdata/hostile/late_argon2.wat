;; late_argon2: an authn module that, for a user whose name starts with
;; "evil", asks the host for an Argon2id hash with the largest parameters
;; allowed under a 64MiB memory_limit (m = 64 MiB, t = 4: a few hundred
;; milliseconds of host work, which the guest's own deadline checks cannot
;; interrupt) and then allows if the hash was computed. That allow arrives
;; long after a 50ms deadline and must not be used; a host that refuses
;; the call (it cannot finish in time) makes the module trap.
(module
  (import "moat" "argon2id" (func $argon2id (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authenticate") (param i32) (result i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    ;; password 16 bytes at 0, salt 16 bytes at 16, tag 32 bytes at 32
    (if (call $argon2id (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 16)
          (i32.const 4) (i32.const 65536) (i32.const 1) (i32.const 32) (i32.const 32))
      (then unreachable))
    (i32.const 1))
)
