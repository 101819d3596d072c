// Runs @magenta/music (magenta.js) under node on checkpoints served over loopback HTTP.
// Usage: node harness.js MUSIC_PACKAGE_DIR JOBS.json RESULTS.json (magenta.js logs to stdout,
// so the JSON array of results goes to a file).
// Each job names a checkpoint URL and what to compute; see tests/test_interop_js.py and
// bench/bench_magentajs.py for the jobs they send and how the answers are compared.
'use strict';
const fs = require('fs');
const path = require('path');

const pkg = process.argv[2];
const jobs = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const {MusicRNN} = require(path.join(pkg, 'node', 'music_rnn.js'));
const {MusicVAE} = require(path.join(pkg, 'node', 'music_vae.js'));
const tf = require(path.join(pkg, '..', '..', '@tensorflow', 'tfjs'));

function sequence(notes, totalSteps, isDrum) {
  return {
    notes: notes.map(([pitch, start, end]) => ({
      pitch, quantizedStartStep: start, quantizedEndStep: end, isDrum, velocity: 100})),
    quantizationInfo: {stepsPerQuarter: 4},
    totalQuantizedSteps: totalSteps,
  };
}

function notesOf(ns) {
  return ns.notes.map(n => [n.pitch, n.quantizedStartStep, n.quantizedEndStep])
      .sort((a, b) => a[1] - b[1] || a[0] - b[0]);
}

async function timeIt(reps, fn) {
  await fn();  // warm-up: first calls compile nothing, but allocate
  const start = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1e9 / reps;
}

async function run(job) {
  const isDrum = !!job.isDrum;
  if (job.kind === 'rnn') {
    // temperature 0 (falsy): magenta.js takes the argmax and returns softmax(logits) per step.
    const model = new MusicRNN(job.url);
    await model.initialize();
    const primer = sequence(job.primer, job.primerSteps, isDrum);
    const out = await model.continueSequenceAndReturnProbabilities(primer, job.steps, 0);
    const result = {probs: out.probs.map(p => Array.from(p)), notes: notesOf(await out.sequence)};
    if (job.reps) {
      result.seconds = await timeIt(job.reps, () => model.continueSequence(primer, job.steps, job.temperature));
    }
    model.dispose();
    return result;
  }
  if (job.kind === 'vae') {
    const model = new MusicVAE(job.url);
    await model.initialize();
    const z = tf.tensor2d(job.z);
    const tensors = await model.decodeTensors(z, 0);
    const decoded = await model.decode(z, 0);
    const result = {events: tensors.argMax(2).arraySync(), notes: decoded.map(notesOf)};
    tensors.dispose();
    if (job.inputs) {
      const mu = await model.encode(job.inputs.map(n => sequence(n, job.numSteps, isDrum)));
      result.mu = mu.arraySync();
      mu.dispose();
    }
    if (job.reps) {
      result.seconds = await timeIt(job.reps, async () => {
        const t = await model.decodeTensors(z, job.temperature);
        t.dispose();
      });
    }
    z.dispose();
    model.dispose();
    return result;
  }
  throw new Error(`unknown job kind ${job.kind}`);
}

(async () => {
  const results = [];
  for (const job of jobs) results.push(await run(job));
  fs.writeFileSync(process.argv[4], JSON.stringify(results));
})().catch(err => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
