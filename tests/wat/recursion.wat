;; Recurses on the WebAssembly call stack itself (Rust's frames live on a shadow
;; stack in linear memory instead): wasmtime's max_wasm_stack must stop it.
(component
  (core module $m
    (func $down (param $n i64) (result i64)
      (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
    (func (export "answer") (result i32)
      (i32.wrap_i64 (call $down (i64.const 0)))))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
