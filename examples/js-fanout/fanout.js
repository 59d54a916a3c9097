// A fan-out in JavaScript: `Fanout({ items })` submits one `Measure` per
// item and a `Report` that depends on all of them; the job's output is the
// report's. Build and run it:
//
//     node guest-sdk-js/bin/sandflow-js.js build examples/js-fanout/fanout.js -o fanout.wasm
//     sandflow module upload fanout.wasm
//     sandflow job submit words --task Fanout@v1.0 --input '{"items": ["alpha", "beta", "gamma"]}'

import { Task, TaskError } from "sandflow";

export class Fanout extends Task {
  static version = "v1.0";
  static fields = { items: ["string"] };

  execute(ctx) {
    if (this.items.length === 0) throw new TaskError("nothing to measure: items is empty");
    ctx.setDisplay(`Fanout over ${this.items.length} items`);
    ctx.progress("items").add(this.items.length);
    const measures = this.items.map((item) => ctx.submitSubtask(new Measure({ item }), { maxRetries: 2 }));
    const report = ctx.submitSubtask(new Report({ measures }), { dependsOn: measures });
    return ctx.outputFrom(report);
  }
}

export class Measure extends Task {
  static version = "v1.0";
  static fields = { item: "string" };

  execute(ctx) {
    ctx.setDisplay(`Measure ${this.item}`);
    const vowels = ctx.tracer.span("count", { item: this.item }, () => [...this.item].filter((c) => "aeiou".includes(c)).length);
    ctx.logger.info("measured", { item: this.item, length: this.item.length, vowels });
    ctx.progress("items").done(1);
    return { item: this.item, length: this.item.length, vowels };
  }
}

export class Report extends Task {
  static version = "v1.0";
  static fields = { measures: ["integer"] };

  execute(ctx) {
    const all = this.measures.map((h) => ctx.outputOf(h));
    const longest = all.reduce((a, b) => (b.length > a.length ? b : a));
    return { items: all.length, letters: all.reduce((n, m) => n + m.length, 0), longest: longest.item };
  }
}
