;; The fast path's hostile twin of forged.wat: a core module (as wit-bindgen lays
;; them out) whose results are whatever bytes the test pokes at address 0, so the
;; test can hand the host's canonical-ABI lifting any pointer, length, discriminant,
;; char and UTF-8 it likes. Its cabi_realloc can be told to lie.
(module
  (import "$root" "sink" (func $sink (param i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 8192))
  (global $lie (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (if (global.get $lie) (then (return (global.get $lie))))
    ;; align the bump pointer up to the requested alignment
    (local.set $p
      (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "answer") (result i32) i32.const 42)
  ;; Leaves memory holding `data` at `at` and zeros elsewhere (whatever earlier calls
  ;; left is wiped, so the same poke always gives the same memory).
  (func (export "poke") (param $at i32) (param $ptr i32) (param $len i32)
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 8192))
    (memory.copy (local.get $at) (local.get $ptr) (local.get $len))
    (memory.fill (i32.const 8192) (i32.const 0) (i32.const 57344))
    (global.set $bump (i32.const 8192)))
  (func (export "get-text") (result i32) i32.const 0)
  (func (export "get-items") (result i32) i32.const 0)
  (func (export "get-char") (result i32) (i32.load (i32.const 0)))
  (func (export "get-enum") (result i32) (i32.load (i32.const 0)))
  (func (export "get-result") (result i32) i32.const 0)
  (func (export "send") (call $sink (i32.load (i32.const 0)) (i32.load (i32.const 4))))
  (func (export "take-string") (param i32 i32) (result i32) local.get 1)
  (func (export "set-realloc") (param i32) (global.set $lie (local.get 0)))
  ;; The fast path requires wit-bindgen's world section; its content is not read
  ;; (the host's WIT is the contract).
  (@custom "component-type:forged-core" ""))
