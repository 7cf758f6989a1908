// Validate Argo Rollouts objects (JSON array on stdin) with the schemas that
// @kubernetes-models/argo-rollouts generates from the Argo Rollouts API. Prints one line
// per error; exits 1 if any object is invalid.
import { readFileSync } from "node:fs";
import { Rollout, AnalysisTemplate, Experiment } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1";

const kinds = { Rollout, AnalysisTemplate, Experiment };
const docs = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const doc of docs) {
  const Model = kinds[doc.kind];
  if (!Model) {
    console.log(`${doc.kind}/${doc.metadata?.name}: no Argo Rollouts schema for this kind`);
    failed += 1;
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (error) {
    console.log(`${doc.kind}/${doc.metadata?.name}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed === 0 ? 0 : 1);
