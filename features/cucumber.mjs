// cucumber-js configuration: ES-module step definitions and support code; formats are given by ./dev test.
export default {
  import: ['support/**/*.js', 'steps/**/*.js'],
  paths: ['*.feature'],
  strict: true,
};
