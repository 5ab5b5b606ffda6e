;; SIMD in a loop: 16-byte immediates, lanes, memargs, and opcodes of two
;; LEB128 bytes (i16x8.abs is 0xfd 0x80 0x01, i32x4.dot_i16x8_s 0xfd 0xba 0x01).
(module
  (memory (export "memory") 1)
  (func (export "simd") (param $n i32) (result i32)
    (local $v v128) (local $i i32)
    (local.set $v (v128.const i32x4 0 0 0 0))
    (loop $l
      (local.set $v (i32x4.add (local.get $v)
        (i32x4.dot_i16x8_s
          (v128.const i16x8 1 2 3 4 5 6 7 8)
          (v128.const i16x8 1 1 1 1 1 1 1 1))))
      (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
        (local.get $v) (local.get $v)))
      (v128.store offset=16 (i32.const 0) (local.get $v))
      (local.set $v (v128.load offset=16 (i32.const 0)))
      (local.set $v (v128.load32_lane 1 (i32.const 16) (local.get $v)))
      (v128.store64_lane 1 (i32.const 48) (local.get $v))
      (local.set $v (i16x8.abs (local.get $v)))
      (local.set $v (i32x4.replace_lane 3 (local.get $v)
        (i32x4.extract_lane 2 (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add
      (i32x4.extract_lane 0 (local.get $v))
      (i32.add (i32x4.extract_lane 3 (local.get $v)) (i32.load (i32.const 52))))))
