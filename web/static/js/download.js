// download.js saves what a page fetched with its bearer header as a file,
// from a Blob URL, so that the token never goes in a URL.

let lastURL = '';

/** saveFile offers text (CSV) to the person as a file named name. */
export function saveFile(text, name, type = 'text/csv;charset=utf-8') {
  if (lastURL) {
    URL.revokeObjectURL(lastURL);
  }
  lastURL = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = lastURL;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}
