// Allure 3 configuration of the benchmarks' report (./run bench: reports/bench-results -> reports/bench-html).
// The same layout as the claims report: paper (epic) -> claim id (feature), from each benchmark's
// extra_info["claim"] (benchmarks/conftest.py); each page shows its ratio, statistics and figure inline.
import { defineConfig } from "allure";

export default defineConfig({
  name: "Claims suite benchmarks: timings, side-by-side ratios",
  output: "reports/bench-html",
  plugins: {
    awesome: {
      options: {
        reportName: "Claims suite: benchmarks",
        groupBy: ["epic", "feature"],
        appendTitlePath: false,
      },
    },
  },
});
