;; Grows its function table by `step` elements until table.grow fails; returns the
;; size it reached (table.grow returns -1 when the store limit refuses).
(component
  (core module $m
    (table $t 1 funcref)
    (func (export "grow-table") (param $step i32) (result i32)
      (block $done
        (loop $more
          (br_if $done (i32.eq (table.grow $t (ref.null func) (local.get $step)) (i32.const -1)))
          (br $more)))
      (table.size $t))
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "grow-table") (param "step" u32) (result u32)
    (canon lift (core func $i "grow-table")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
