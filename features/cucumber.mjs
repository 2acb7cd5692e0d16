// cucumber-js configuration: ES-module step definitions and support code; formats are given by ./dev test.
const common = {
  import: ['support/**/*.js', 'steps/**/*.js'],
  strict: true,
};

// The catalog against the small stack (`./dev up`): every top-level feature; the @ha ones need the HA stack.
export default { ...common, paths: ['*.feature'], tags: 'not @ha' };

// The @ha scenarios against the HA stack (`./dev up --ha`): `npx cucumber-js --profile ha` (not @known-bug:
// scenarios that state a service bug the catalog found; not @wip:
// scenarios whose steps or service behaviour do not exist yet).
export const ha = { ...common, paths: ['ha/*.feature'], tags: '@ha and not @wip and not @known-bug' };
