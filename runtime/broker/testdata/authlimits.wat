;; authlimits: an enhanced-authentication module that returns as much as
;; its method's name asks for, to test the broker's limits on one exchange
;; (authlimits.go). Round 0 continues with, by the method's length:
;;   4 "DATA":   16385 bytes of auth data (over the limit);
;;   5 "STATE":  4097 bytes of auth state (over the limit);
;;   6 "WITHIN": 16384 bytes of data and 4096 of state (at the limits).
;; Any later round allows. Any other method, or none, is ignored.
(module
  (import "moat" "set_auth_data" (func $set_auth_data (param i32 i32) (result i32)))
  (import "moat" "set_auth_state" (func $set_auth_state (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authenticate") (param $len i32) (result i32)
    (local $mlen i32)
    ;; the request is at 1024: round at +8; auth_method (field 12)
    ;; descriptor at 1024 + 16 + 12*8 = 1136, its length at 1140
    (if (i32.ne (i32.load (i32.const 1032)) (i32.const 0)) (then (return (i32.const 1))))
    (if (i32.eqz (i32.load (i32.const 1136))) (then (return (i32.const 3))))
    (local.set $mlen (i32.load (i32.const 1140)))
    (if (i32.eq (local.get $mlen) (i32.const 4))
      (then
        (drop (call $set_auth_data (i32.const 8192) (i32.const 16385)))
        (return (i32.const 4))))
    (if (i32.eq (local.get $mlen) (i32.const 5))
      (then
        (drop (call $set_auth_state (i32.const 8192) (i32.const 4097)))
        (drop (call $set_auth_data (i32.const 8192) (i32.const 1)))
        (return (i32.const 4))))
    (if (i32.eq (local.get $mlen) (i32.const 6))
      (then
        (drop (call $set_auth_data (i32.const 8192) (i32.const 16384)))
        (drop (call $set_auth_state (i32.const 8192) (i32.const 4096)))
        (return (i32.const 4))))
    (i32.const 3))
)
