;; basic: a well-behaved module deciding authn, authz and taking a config.
;; authz: topic "public/..." allow; "deny..." deny 0x87 with a message; else ignore.
;; authn, on the first byte of the username:
;;   'a' allow with attribute role=admin and an expiry; 'b' deny 0x86 "bad password";
;;   's' allow as superuser; 'c' enhanced auth: continue, then allow if auth_state came back;
;;   'd' deny with attributes (which the host must drop); else ignore.
;; moat_configure logs the config it receives at info level and accepts it.
(module
  (import "moat" "log" (func $log (param i32 i32 i32)))
  (import "moat" "set_message" (func $set_message (param i32 i32) (result i32)))
  (import "moat" "add_attribute" (func $add_attribute (param i32 i32 i32 i32) (result i32)))
  (import "moat" "set_expiry" (func $set_expiry (param i64) (result i32)))
  (import "moat" "set_auth_data" (func $set_auth_data (param i32 i32) (result i32)))
  (import "moat" "set_auth_state" (func $set_auth_state (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $buf (mut i32) (i32.const 1024))
  (data (i32.const 8192) "role")
  (data (i32.const 8200) "admin")
  (data (i32.const 8208) "bad password")
  (data (i32.const 8224) "authenticating")
  (data (i32.const 8240) "server-first")
  (data (i32.const 8256) "state-1")
  (data (i32.const 8272) "denied by basic")
  (func (export "moat_abi_v1"))
  ;; A bump allocator: small requests share 1024..5120; larger ones get
  ;; fresh pages.
  (func (export "moat_buffer") (param $size i32) (result i32)
    (local $ptr i32)
    (if (i32.le_u (local.get $size) (i32.const 4096))
      (then (global.set $buf (i32.const 1024)) (return (i32.const 1024))))
    (local.set $ptr (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const 0))
      (then unreachable))
    (global.set $buf (local.get $ptr))
    (local.get $ptr))
  ;; $off returns the address of field $id's data, $len its length.
  (func $off (param $id i32) (result i32)
    (local $o i32)
    (local.set $o (i32.load (i32.add (global.get $buf) (i32.add (i32.const 16) (i32.shl (local.get $id) (i32.const 3))))))
    (if (result i32) (local.get $o)
      (then (i32.add (global.get $buf) (local.get $o)))
      (else (i32.const 0))))
  (func $len (param $id i32) (result i32)
    (i32.load (i32.add (global.get $buf) (i32.add (i32.const 20) (i32.shl (local.get $id) (i32.const 3))))))
  (func (export "moat_configure") (param $n i32) (result i32)
    (call $log (i32.const 1) (global.get $buf) (local.get $n))
    (i32.const 0))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (local $p i32) (local $l i32)
    ;; field 5 (topic): descriptor at 16 + 5*8 = 56
    (local.set $p (i32.add (global.get $buf) (i32.load offset=56 (global.get $buf))))
    (local.set $l (i32.load offset=60 (global.get $buf)))
    (if (i32.ge_u (local.get $l) (i32.const 7))
      (then
        (if (i32.and
              (i32.eq (i32.load (local.get $p)) (i32.const 0x6c627570))                         ;; "publ"
              (i32.eq (i32.and (i32.load offset=4 (local.get $p)) (i32.const 0xffffff)) (i32.const 0x2f6369))) ;; "ic/"
          (then (return (i32.const 1))))))
    (if (i32.ge_u (local.get $l) (i32.const 4))
      (then
        (if (i32.eq (i32.load (local.get $p)) (i32.const 0x796e6564)) ;; "deny"
          (then
            (drop (call $set_message (i32.const 8272) (i32.const 15)))
            (return (i32.const 0x8702))))))
    (i32.const 3))
  (func (export "moat_authenticate") (param $n i32) (result i32)
    (local $c i32)
    (if (i32.eqz (call $len (i32.const 1))) (then (return (i32.const 3))))
    (local.set $c (i32.load8_u (call $off (i32.const 1))))
    (call $log (i32.const 0) (i32.const 8224) (i32.const 14))
    (if (i32.eq (local.get $c) (i32.const 0x61)) ;; 'a'
      (then
        (drop (call $add_attribute (i32.const 8192) (i32.const 4) (i32.const 8200) (i32.const 5)))
        (drop (call $set_expiry (i64.const 4102444800000000000)))
        (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x62)) ;; 'b'
      (then
        (drop (call $set_message (i32.const 8208) (i32.const 12)))
        (return (i32.const 0x8602))))
    (if (i32.eq (local.get $c) (i32.const 0x73)) ;; 's'
      (then (return (i32.const 0x10001))))
    (if (i32.eq (local.get $c) (i32.const 0x63)) ;; 'c'
      (then
        (if (i32.eqz (i32.load offset=8 (global.get $buf))) ;; round 0
          (then
            (drop (call $set_auth_data (i32.const 8240) (i32.const 12)))
            (drop (call $set_auth_state (i32.const 8256) (i32.const 7)))
            (return (i32.const 4))))
        (if (i32.eq (call $len (i32.const 14)) (i32.const 7))
          (then (return (i32.const 1))))
        (return (i32.const 2))))
    (if (i32.eq (local.get $c) (i32.const 0x64)) ;; 'd'
      (then
        (drop (call $add_attribute (i32.const 8192) (i32.const 4) (i32.const 8200) (i32.const 5)))
        (return (i32.const 2))))
    (i32.const 3))
)
