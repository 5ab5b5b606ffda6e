;; auth_data: an authn module that answers every MQTT 5 enhanced
;; authentication of an evil user with "continue", 65535 bytes of
;; authentication data for the client and 65535 bytes of state for the
;; next round, whatever the client sent: a 30-byte CONNECT gets 64 KiB
;; back, and the broker holds 128 KiB per pending exchange.
(module
  (import "moat" "set_auth_data" (func $set_auth_data (param i32 i32) (result i32)))
  (import "moat" "set_auth_state" (func $set_auth_state (param i32 i32) (result i32)))
  (memory (export "memory") 3)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authenticate") (param i32) (result i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    ;; field 12 (auth_method): descriptor at 1024 + 16 + 12*8, offset 0 = absent
    (if (i32.eqz (i32.load (i32.const 1136))) (then (return (i32.const 3))))
    (drop (call $set_auth_data (i32.const 0x10000) (i32.const 65535)))
    (drop (call $set_auth_state (i32.const 0x20000) (i32.const 65535)))
    (i32.const 4))
)
